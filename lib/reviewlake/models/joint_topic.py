"""The joint sentiment-topic model: encoder embeddings -> autoencoder, Deep Embedded Clustering, sentiment.

An MLP encodes a review's (frozen, pretrained) sentence embedding into a small latent space and a
decoder reconstructs the embedding from it. Two heads sit on the latent: Deep Embedded Clustering
(Xie et al. 2016: k centroids, a Student-t soft assignment ``q``, trained towards the sharpened
target ``p = q^2 / f`` normalised per row, with ``f`` the soft topic frequencies) and a sentiment
classifier. One loss trains them together::

    L = L_rec + gamma * KL(p || q) + lambda * L_sent

Every term is computed on every step (``gamma`` is 0 before the centroids are set), so each
parameter takes part in each step, as DDP and Horovod want.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from reviewlake.models.multitask import masked_cross_entropy


class JointTopicModel(nn.Module):
    """``forward(x)`` returns (latent z, reconstruction, soft assignment q, sentiment logits)."""

    def __init__(self, dim: int, hidden: int, latent: int, topics: int, num_classes: int, dropout: float = 0.2,
                 alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.centroids = nn.Parameter(torch.zeros(topics, latent))
        self.sentiment = nn.Sequential(nn.Dropout(dropout), nn.Linear(latent, hidden // 2), nn.ReLU(),
                                       nn.Dropout(dropout), nn.Linear(hidden // 2, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z), soft_assignment(z, self.centroids, self.alpha), self.sentiment(z)


def soft_assignment(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t kernel between each latent row and each centroid, normalised over the centroids."""
    distance = torch.cdist(z, centroids).pow(2)
    q = (1.0 + distance / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
    """DEC's auxiliary target: ``q^2 / f`` normalised per row, ``f`` the soft count of each topic (over
    every rank's rows when trained distributed)."""
    p = q.pow(2) / frequency.clamp(min=1e-12)
    return p / p.sum(1, keepdim=True)


def joint_loss(x: torch.Tensor, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
               p: torch.Tensor, sentiment: torch.Tensor, gamma: float, sentiment_weight: float,
               class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The combined loss and its parts; rows without a sentiment label (-1) add no sentiment loss."""
    _, recon, q, logits = outputs
    # Squared error per row (summed over the dimensions): on L2-normalised embeddings a per-value
    # mean is ~1/dim as large, and the sentiment term alone would shape the latent space.
    l_rec = (recon - x).pow(2).sum(1).mean()
    l_kl = F.kl_div(q.clamp(min=1e-12).log(), p, reduction="batchmean")
    l_sent = masked_cross_entropy(logits, sentiment, class_weights)
    total = l_rec + gamma * l_kl + sentiment_weight * l_sent
    return total, {"loss": total.item(), "loss_rec": l_rec.item(), "loss_kl": l_kl.item(),
                   "loss_sentiment": l_sent.item()}


def kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ centroids of ``points`` (scikit-learn, 10 starts): DEC's initial centroids."""
    from sklearn.cluster import KMeans

    if len(points) < k:
        raise ValueError(f"{len(points)} rows cannot seed {k} topics; lower train.joint_topic.topics")
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points).cluster_centers_.astype(np.float32)
