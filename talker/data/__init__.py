"""Datasets on disk, the LightningDataModule and ray sampling."""
