"""Helpers for the image-processing coursework notebooks.

One module per job:

- ``cifar``       CIFAR-10 python batches into memory, download, stratified subsets
- ``folder_data`` the anomaly task's folder layout decoded once into a tensor cache
- ``augment``     batched augmentation on the device (crop, flip, colour jitter)
- ``models``      32x32 ResNets built from torchvision blocks, the anomaly autoencoder
- ``training``    the one ``fit`` function both homeworks share
- ``metrics``     classification and anomaly metrics
- ``plots``       every figure the notebooks show and save
- ``config``      presets and parameter validation with clear errors
- ``runs``        run folders, atomic writes, the record of a run
- ``device``      device auto-selection
"""

__version__ = "0.1.0"
