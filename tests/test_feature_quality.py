import torch

from helpers.hw1.feature_quality import encoder_features, knn_accuracy, knn_predict
from helpers.hw1.resnet import CIFAR10_MEAN, CIFAR10_STD, Normalize, ResNetEncoder


def test_knn_votes_by_cosine_similarity():
    bank = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0]])  # length does not matter, angle does
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[1.0, 0.2], [0.1, 1.0], [5.0, 4.0]])
    assert knn_predict(bank, labels, query, 2, k=1).tolist() == [0, 1, 0]
    # k=3: two class-0 neighbours outvote one class-1 neighbour unless it is far closer
    assert knn_predict(
        bank, labels, torch.tensor([[0.0, 1.0]]), 2, k=3, temperature=0.07
    ).tolist() == [1]
    assert knn_predict(
        bank, labels, torch.tensor([[0.0, 1.0]]), 2, k=3, temperature=100.0
    ).tolist() == [0]
    assert abs(knn_accuracy(bank, labels, query, torch.tensor([0, 1, 1]), 2, k=1) - 2 / 3) < 1e-6


def test_separable_features_give_perfect_knn_accuracy():
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 5
    labels = torch.arange(3).repeat_interleave(20)
    feats = centres[labels] + torch.randn(60, 16)
    assert knn_accuracy(feats[::2], labels[::2], feats[1::2], labels[1::2], 3, k=5) == 1.0


def test_encoder_features_are_pooled_per_image():
    torch.manual_seed(0)
    enc = ResNetEncoder("resnet18", 4)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    feats = encoder_features(enc, images, torch.device("cpu"), batch_size=2)
    assert enc.training  # mode restored
    enc.eval()
    with torch.no_grad():  # the average over positions of the encoder's last feature map
        expected = enc(Normalize(CIFAR10_MEAN, CIFAR10_STD)(images.float() / 255)).mean((2, 3))
    assert torch.allclose(feats, expected, atol=1e-5)
    alone = torch.cat(
        [encoder_features(enc, images[i : i + 1], torch.device("cpu")) for i in range(5)]
    )
    assert torch.allclose(alone, feats, atol=1e-5)  # an image's features do not depend on its batch
