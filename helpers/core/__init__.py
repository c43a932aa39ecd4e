"""What both homeworks share: the training loop, devices, runs, figures and metrics."""
