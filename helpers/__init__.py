"""Helpers for the image-processing coursework notebooks: all of their logic, tested.

The folders say what depends on what: ``core`` is shared and knows nothing of the
homeworks; ``data`` reads the data sets; ``hw1`` and ``hw2`` are the two homeworks (each
``from helpers import hw1`` gives its notebook's steps); ``tools`` are the command-line
tools (``python -m helpers.tools.<name>``), which run the notebooks and write the docs.

- ``core/``      ``training`` (``fit``, the loop both homeworks share), ``augment``
  (batched augmentation on the device), ``images`` (running images through a network
  in batches), ``metrics``, ``device`` (device and precision), ``runs`` (run folders,
  atomic writes, the record of a run), ``checkpoints``, ``progress``, ``tensorboard``,
  ``plots`` (figures), ``notebooks`` (running a notebook headlessly), ``errors``
- ``data/``      ``cifar`` (CIFAR-10 into memory), ``anomaly_data`` (the anomaly task's
  folder layout, and one-class CIFAR-10), ``folder_profile`` (what a folder of images
  decides: working size, grey or colour, training budget), ``near_duplicates`` (groups
  of near-identical frames, the grouped validation split), ``synthetic`` (small generated
  data sets for tests and the benchmark)
- ``hw1/``       ``steps`` (one call per notebook cell), ``settings`` (presets and
  parameters), ``resnet`` (ResNet-18/34 adapted to 32x32 images), ``restoration``
  (restoration pretraining), ``masking``, ``contrastive`` (SimCLR), ``self_training``,
  ``feature_quality`` (kNN accuracy of an encoder's features)
- ``hw2/``       ``steps``, ``autoencoder`` (with its channel-attention mask),
  ``detector`` (the signals, standardised and summed), ``thresholds`` (label-free
  thresholds and the test metrics), ``rotation`` (the rotation network)
- ``tools/``     ``reproduce`` (every notebook, figure and table), ``study`` (hw1's
  data-fraction study), ``recipe_search`` (hw1's settings per fraction), ``oneclass``
  (hw2 on each CIFAR-10 class), ``bench`` (training throughput), ``time_to_accuracy``,
  ``colab`` (point the Colab badges at a copy), ``report`` (the docs' results blocks)
"""

__version__ = "0.1.0"
