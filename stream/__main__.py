"""`python -m stream ...` runs the densestream command without the installed console script."""

from stream.launch import main

main()
