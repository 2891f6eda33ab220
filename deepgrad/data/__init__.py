"""Data: datasets, the DataLoader, the MNIST family (local files or download) and npz files.

Mirrors ``torch.utils.data`` (``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``,
``DataLoader``, ``default_collate``) and ``torchvision.datasets`` (``MNIST``,
``FashionMNIST``, ``KMNIST``).
"""

from deepgrad.data.dataloader import DataLoader, default_collate
from deepgrad.data.dataset import Dataset, Subset, TensorDataset, random_split
from deepgrad.data.datasets import (
    DATASETS,
    FASHION_MNIST_SOURCE,
    KMNIST,
    KMNIST_SOURCE,
    MNIST,
    MNIST_SOURCE,
    FashionMNIST,
    load_arrays,
)
from deepgrad.data.download import DataSource, default_data_root, download, locate_files
from deepgrad.data.idx import read_idx, write_idx
from deepgrad.data.npz import load_npz

__all__ = [
    "DATASETS",
    "FASHION_MNIST_SOURCE",
    "KMNIST",
    "KMNIST_SOURCE",
    "MNIST",
    "MNIST_SOURCE",
    "DataLoader",
    "DataSource",
    "Dataset",
    "FashionMNIST",
    "Subset",
    "TensorDataset",
    "default_collate",
    "default_data_root",
    "download",
    "load_arrays",
    "load_npz",
    "locate_files",
    "random_split",
    "read_idx",
    "write_idx",
]
