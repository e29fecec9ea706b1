"""Audio input: decoding any ffmpeg-readable file to 16 kHz mono, and per-video-frame features."""

from talker.audio.features import AudioFeatures, FrameWindows, LogMel, video_windows
from talker.audio.io import SAMPLE_RATE, AudioError, load_audio, write_wav
from talker.audio.pretrained import HuBERT, PretrainedSpeechFeatures, Wav2Vec2, WeightsMissing

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioFeatures",
    "FrameWindows",
    "HuBERT",
    "LogMel",
    "PretrainedSpeechFeatures",
    "Wav2Vec2",
    "WeightsMissing",
    "load_audio",
    "video_windows",
    "write_wav",
]
