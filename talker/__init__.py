"""talker: person-specific, NeRF-based, audio-driven talking heads (R2-Talker and its baselines)."""

import os

# OpenMP threads that wait for each other sleep instead of spinning. Next to another busy process,
# spinning made 40 quickstart steps take 197-237 s instead of 29-42 s (2 threads, a loaded 2-core
# machine; benchmarks/threads.py). Set here, before torch is imported: OpenMP reads it once, at load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# ...after a short spin (GNU OpenMP, torch's on Linux: 1000 turns, microseconds): a step's operators
# follow each other faster than a sleeping thread wakes. Alone, 240 quickstart steps took 30-36 s
# instead of 40-46 s; two runs side by side 42-51 s instead of 38-49 s (10000 turns: 28-34 s alone,
# 103-105 s side by side). docs/training_profile.md, "Waiting threads".
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
