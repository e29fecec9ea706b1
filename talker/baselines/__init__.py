"""Systems that are not an ablation arm of R2-Talker (its Tables 1 and 2 compare against them).

Each is composed from talker's shared parts (the one ``HeadModule``, encoders, rendering, stages,
evaluator) plus what is its own:

- ``er_nerf``: ER-NeRF's field (tri-plane hash encoding, region attention, eye gate, uncertainty),
  its uncertainty-weighted MSE and its adaptive pose encoding of the torso;
- ``lokitalk``: LokiTalk's driving signals and cascaded deformation fields (a conditioning strategy
  whose warp the shared head field applies); a system of its own paper, not a row of R2-Talker's tables;
- ``wav2lip``: not trained here; scores Wav2Lip's videos with the shared evaluator.

RAD-NeRF and GeneFace++ dagger need no code of their own: they are config compositions of shared
parts (``configs/system/rad_nerf.yaml``, ``geneface_pp.yaml``).

This is a package inside ``talker`` rather than a top-level ``baselines/`` so that it installs with
talker (``packages.find: talker*``), is importable as ``_target_: talker.baselines...`` from any
working directory, and cannot shadow another distribution's ``baselines`` module.
"""
