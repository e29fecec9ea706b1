"""talker: person-specific, NeRF-based, audio-driven talking heads (R2-Talker and its baselines)."""

import os

# OpenMP threads that wait for each other sleep instead of spinning. Next to another busy process,
# spinning made 40 quickstart steps take 197-237 s instead of 29-42 s (2 threads, a loaded 2-core
# machine; benchmarks/threads.py). Set here, before torch is imported: OpenMP reads it once, at load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
