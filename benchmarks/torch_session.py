"""The PyTorch session: the MNIST convnet rebuilt in PyTorch, trained as Keras trains it.

PyTorch is optional and imported only inside this session's methods (so that the parent
process and the other workers never load it).
"""

from __future__ import annotations

import numpy as np

from benchmarks.sessions import Session, seeded_minicnn_model

__all__ = ["TorchSession"]


class TorchSession(Session):
    """The same network in PyTorch: NCHW tensors (a free reshape for one channel),
    the same starting weights, RMSprop with Keras's defaults, and the loss and
    accuracy of every batch computed as Keras's ``fit`` computes them."""

    def build(self) -> None:
        torch = self.make_network()
        # Keras's RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps).
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=1e-3, alpha=0.9,
                                             eps=1e-7)
        # (N, 28, 28, 1) -> (N, 1, 28, 28) is the same memory: no copy.
        self.x_nchw = torch.from_numpy(self.x.reshape(len(self.x), 1, 28, 28))
        self.labels_tensor = torch.from_numpy(self.labels)
        self.x_test_nchw = torch.from_numpy(self.x_test.reshape(len(self.x_test), 1, 28, 28))
        self.generator = torch.Generator().manual_seed(self.spec["seed"])

    def make_network(self):
        """The network, holding minicnn's starting weights for this seed; returns torch."""
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(self.spec["threads"])
        torch.manual_seed(self.spec["seed"])
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
        self.copy_weights(seeded_minicnn_model(self.spec["seed"]).get_weights())
        return torch

    def copy_weights(self, weights: list[np.ndarray]) -> None:
        """Load minicnn's weights (Keras order and shapes): HWIO kernels become OIHW,
        Dense kernels (in, out) become (out, in), and the first Dense's rows are
        reordered from NHWC to NCHW flattening."""
        torch = self.torch
        convs = [m for m in self.model if isinstance(m, torch.nn.Conv2d)]
        denses = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        arrays = iter(weights)
        with torch.no_grad():
            for conv in convs:
                conv.weight.copy_(torch.from_numpy(next(arrays).transpose(3, 2, 0, 1).copy()))
                conv.bias.copy_(torch.from_numpy(next(arrays)))
            for position, dense in enumerate(denses):
                kernel = next(arrays)  # (in, out)
                if position == 0:
                    # minicnn flattens (H, W, C); torch flattens (C, H, W).
                    kernel = kernel.reshape(3, 3, 64, -1).transpose(2, 0, 1, 3).reshape(576, -1)
                dense.weight.copy_(torch.from_numpy(kernel.T.copy()))
                dense.bias.copy_(torch.from_numpy(next(arrays)))

    def threads(self) -> str:
        return f"torch.set_num_threads({self.torch.get_num_threads()})"

    def fit_one_epoch(self) -> None:
        torch = self.torch
        functional = torch.nn.functional
        self.model.train()
        order = torch.randperm(len(self.x_nchw), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            images, labels = self.x_nchw[batch], self.labels_tensor[batch]
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(images)
            loss = functional.cross_entropy(logits, labels)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():  # what Keras's fit reports per batch
                float(loss)
                float((logits.argmax(dim=1) == labels).float().mean())

    def predict_test(self) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        out = np.empty((len(self.x_test_nchw), 10), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(out), self.batch_size):
                logits = self.model(self.x_test_nchw[start:start + self.batch_size])
                out[start:start + len(logits)] = torch.softmax(logits, dim=1).numpy()
        return out
