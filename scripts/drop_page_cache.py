#!/usr/bin/env python3
"""drop_page_cache.py FILE... -- write the files out and drop them from the page cache, so that the
next load maps them in 2 MiB pages (tools/convert.py `drop_from_page_cache`; docs/performance.md,
"Huge pages for the weights"). Used by the benchmark scripts before they run."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from convert import drop_from_page_cache  # noqa: E402

for path in sys.argv[1:]:
    drop_from_page_cache(path)
