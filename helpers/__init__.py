"""Helpers for the image-processing coursework notebooks.

One module per job:

- ``cifar``       CIFAR-10 python batches into memory, download, stratified subsets
- ``folder_data`` the anomaly task's folder layout decoded once into a tensor cache
- ``synthetic``   small generated data sets in both formats (tests, benchmark)
- ``augment``     batched augmentation on the device (crop, flip, cutout, colour jitter)
- ``batches``     ``run_in_batches``: inference a batch at a time, without gradients
- ``models``      32x32 ResNets built from torchvision blocks
- ``autoencoder`` the anomaly autoencoder with its channel-attention mask
- ``pretrain``    restoration pretraining of the ResNet encoder
- ``training``    the one ``fit`` function both homeworks share
- ``metrics``     classification metrics; ``anomaly``: anomaly scores and thresholds
- ``plots``       every figure the notebooks show and save
- ``config``      presets and parameter validation with clear errors
- ``runs``        run folders, atomic writes, the record of a run
- ``checkpoints`` loading weights with a clear error on a mismatch
- ``device``      device and mixed-precision choice
- ``tensorboard`` optional TensorBoard logging
- ``hw1``, ``hw2`` the homeworks' steps, one call per notebook cell
- ``study``       ``python -m helpers.study``: the hw1 data-fraction study
- ``report``      the README's results blocks, written from metrics files
- ``reproduce``   ``python -m helpers.reproduce``: every notebook, figure and table
- ``bench``       ``python -m helpers.bench``: training throughput
- ``colab``       ``python -m helpers.colab URL``: point the Colab badges at a copy
"""

__version__ = "0.1.0"
