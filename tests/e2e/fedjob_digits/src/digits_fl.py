"""The seed's `cifar10_fl.py`, rewritten for scikit-learn's bundled digits: a client's own training
script, made federated with the Client API's five calls and nothing else."""

from __future__ import annotations

import argparse

import numpy as np
import torch
from net import Net
from sklearn.datasets import load_digits
from torch import nn

import openfl_cli.client as flare


def site_data(site: str, n_clients: int) -> tuple[torch.Tensor, ...]:
    """This site's shard of the digits (site-1 takes every n-th sample from 0, site-2 from 1, ...)."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    index = int(site.rsplit("-", 1)[-1]) - 1
    x, y = x[index::n_clients], y[index::n_clients]
    split = int(0.8 * len(y))
    return x[:split], y[:split], x[split:], y[split:]


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--n_clients", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=32, help="hidden layer width (50 MB: 190000)")
    parser.add_argument("--fail", action="store_true", help="raise in the first round (a test)")
    args = parser.parse_args()

    flare.init()
    site = flare.get_site_name()
    x_train, y_train, x_test, y_test = site_data(site, args.n_clients)
    net = Net(args.hidden)
    loss_fn = nn.CrossEntropyLoss()
    while flare.is_running():
        input_model = flare.receive()
        if input_model is None:
            break
        if args.fail:
            raise RuntimeError(f"{site} was told to fail")
        net.load_state_dict(input_model.params)
        global_accuracy = accuracy(net, x_test, y_test)  # the received global model, as the seed's does
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        order = torch.Generator().manual_seed(1000 * (input_model.current_round or 0) + len(y_train))
        steps = 0
        for _ in range(args.epochs):
            for batch in torch.randperm(len(y_train), generator=order).split(args.batch_size):
                optimizer.zero_grad()
                loss_fn(net(x_train[batch]), y_train[batch]).backward()
                optimizer.step()
                steps += 1
        flare.log("train_accuracy", accuracy(net, x_train, y_train))
        flare.send(
            flare.FLModel(
                params=net.state_dict(),
                metrics={"accuracy": global_accuracy},
                meta={"NUM_STEPS_CURRENT_ROUND": steps},
            )
        )
    print(f"{site}: done, np {np.__version__}")


if __name__ == "__main__":
    main()
