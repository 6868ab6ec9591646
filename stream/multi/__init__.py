"""Many streams in one process: one device stage batches frames of the same size across
streams, each result goes back to its own stream's outputs (see ``engine.MultiStream``)."""
from .engine import MultiStream, reopens
from .hub import Batch, Hub
from .lists import SourceEntry, as_entry, read_source_list
from .starting import output_templates, start_streams
from .streams import LATENCY_BUCKETS, StreamSummary
from .summary import MultiSummary

__all__ = ["LATENCY_BUCKETS", "Batch", "Hub", "MultiStream", "MultiSummary", "SourceEntry", "StreamSummary",
           "as_entry", "output_templates", "read_source_list", "reopens", "start_streams"]
