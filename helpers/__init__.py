"""Helpers for the image-processing coursework notebooks: all of their logic, tested.

The folders say what depends on what: ``core`` is shared and knows nothing of the
homeworks; ``data`` reads the data sets; ``hw1`` and ``hw2`` are the two homeworks (each
``from helpers import hw1`` gives what its notebook calls); ``tools`` are the command-line
tools (``python -m helpers.tools.<name>``), which run the notebooks and write the docs::

    core/              shared by both homeworks
      training         fit: the one training loop, in steps
      trainer          FitConfig, FitResult; optimiser, schedule, checkpoint state
      objectives       the Objective protocol; classification, reconstruction
      inference        evaluation, prediction with test-time views, one batch's gradients
      augment          batched crop, flip, cutout, colour jitter on the device
      images           ImageSet (images in memory); run_in_batches
      metrics          device-side confusion matrix; the test report
      device           device and precision choice; the AVX2 channels-last guard
      params           settings declared once (default, type, bounds, help), checked
      notebook_params  the notebook parameters both homeworks declare alike
      runs             run folders, atomic writes, the record of a run
      checkpoints      loading weights with a clear error on a mismatch
      progress         progress bars, log lines, the training-time estimate
      tensorboard      optional TensorBoard logging
      plots            the figures both homeworks draw
      notebooks        running a notebook headlessly into a run folder
      errors           the error types
    data/              the data sets
      cifar            CIFAR-10 into memory; download; stratified subsets
      anomaly_data     the anomaly task's folder layout; one-class CIFAR-10
      folder_profile   what a folder's images decide: size, grey or colour, budget
      near_duplicates  groups of near-identical frames; the grouped validation split
      synthetic        small generated data sets (tests, benchmark)
    hw1/               homework 1: CIFAR-10 with a 32x32 ResNet, pretraining, few labels
      steps            the notebook's steps, one call per cell
      pretraining      pretraining the encoder without labels, and reusing it
      self_training    the teacher's class-balanced pseudo-labels; the student
      settings         every parameter, declared once; resolve_hw1
      presets          the recipes, the settings tuned per labelled fraction
      resnet           ResNet-18/34 adapted to 32x32 images
      restoration      restoration pretraining: recipes, masked encoder-decoder
      masking          patch masks and the masked-patch loss (SparK/MAE pieces)
      contrastive      SimCLR: views on the device, projection head, NT-Xent
      feature_quality  kNN accuracy of an encoder's features
      plots            hw1's figures (and the shared ones)
    hw2/               homework 2: anomaly detection, label-free thresholds
      steps            the notebook's steps, one call per cell
      results          what the notebook shows and saves of the result
      settings         every parameter, declared once; the data sets' defaults
      autoencoder      the convolutional autoencoder and its channel-attention mask
      signals          what each signal measures, and the normals' statistics
      detector         the signals fitted, standardised and summed
      thresholds       label-free thresholds; TPR, TNR, AUROC, AUPR
      rotation         the rotation network and its signals
      defects          the defect network: a U-Net trained on synthetic defects
      plots            hw2's figures (and the shared ones)
    tools/             python -m helpers.tools.<name>
      reproduce        every notebook, figure and results block
      study            hw1's data-fraction study
      study_report     its table and figures
      recipe_search    hw1's settings per labelled fraction, on the validation split
      oneclass         hw2 on each of the ten CIFAR-10 classes
      bench            training throughput
      bench_loops      the loops it times
      time_to_accuracy validation accuracy against training minutes
      colab            point the Colab badges at a copy
      parameters       the parameters cells and docs tables, from the declarations
      report           the docs' results blocks, from metrics files
      cli              what the tools share: their parser, --set NAME=VALUE
    bench              python -m helpers.bench: tools/bench under its older name
"""

__version__ = "0.1.0"
