"""The data sets: CIFAR-10, the anomaly task's folders, and generated stand-ins for tests."""
