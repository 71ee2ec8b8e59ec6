# ruff: noqa  - the flow below is the seed's code as written, on purpose
"""The `FederatedFlow` of ../shared/seeds/000_* exactly as the seed writes it, with only its imports and
the helpers the seed leaves to the reader (Net, inference, FedAvg, the MNIST data sets) defined here:
MNIST is scikit-learn's bundled digits drawn at 28x28, shaped like torchvision's data sets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the seed's spelling
from torch import nn, optim

from openfl_cli.data.mnist import digits_as_mnist
from openfl_cli.workflow import FLSpec, aggregator, collaborator

learning_rate = 0.01
momentum = 0.5
log_interval = 10
batch_size_train = 64


class DigitsMNIST(torch.utils.data.Dataset):
    """`.data` (N, 28, 28) uint8 and `.targets` (N,) like torchvision's MNIST; items are normalized."""

    def __init__(self, train: bool) -> None:
        x_train, y_train, x_test, y_test = digits_as_mnist()
        images, labels = (x_train, y_train) if train else (x_test, y_test)
        self.data = torch.from_numpy(np.array(images))
        self.targets = torch.from_numpy(np.array(labels))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.data[index].float().div(255.0).sub(0.1307).div(0.3081).unsqueeze(0)
        return image, self.targets[index]


mnist_train = DigitsMNIST(train=True)
mnist_test = DigitsMNIST(train=False)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, kernel_size=5)
        self.fc = nn.Linear(8 * 12 * 12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return F.log_softmax(self.fc(x.flatten(1)), dim=1)


class WideNet(Net):
    """Net with a 12,000-unit hidden layer: about 50 MB of float32 parameters (the checkpoint bench)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(8 * 12 * 12, 12_000)
        self.fc = nn.Linear(12_000, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return F.log_softmax(self.fc(F.relu(self.hidden(x.flatten(1)))), dim=1)


def inference(network: nn.Module, test_loader: torch.utils.data.DataLoader) -> float:
    network.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            correct += int((network(data).argmax(dim=1) == target).sum())
    return correct / len(test_loader.dataset)


def FedAvg(models: list[nn.Module]) -> nn.Module:  # noqa: N802 - the seed's spelling
    """The plain mean of the models' parameters, loaded into the first model."""
    states = [model.state_dict() for model in models]
    merged = {key: torch.stack([state[key].float() for state in states]).mean(0) for key in states[0]}
    models[0].load_state_dict(merged)
    return models[0]


# --- from here on, the seed's flow as written --------------------------------------------------------


class FederatedFlow(FLSpec):

    def __init__(self, model = None, optimizer = None, rounds=3, **kwargs):
        super().__init__(**kwargs)
        if model is not None:
            self.model = model
            self.optimizer = optimizer
        else:
            self.model = Net()
            self.optimizer = optim.SGD(self.model.parameters(), lr=learning_rate,
                                   momentum=momentum)
        self.rounds = rounds

    @aggregator
    def start(self):
        print(f'Performing initialization for model')
        self.collaborators = self.runtime.collaborators
        self.private = 10
        self.current_round = 0
        self.next(self.aggregated_model_validation,foreach='collaborators',exclude=['private'])

    @collaborator
    def aggregated_model_validation(self):
        print(f'Performing aggregated model validation for collaborator {self.input}')
        self.agg_validation_score = inference(self.model,self.test_loader)
        print(f'{self.input} value of {self.agg_validation_score}')
        self.next(self.train)

    @collaborator
    def train(self):
        self.model.train()
        self.optimizer = optim.SGD(self.model.parameters(), lr=learning_rate,
                                   momentum=momentum)
        train_losses = []
        for batch_idx, (data, target) in enumerate(self.train_loader):
          self.optimizer.zero_grad()
          output = self.model(data)
          loss = F.nll_loss(output, target)
          loss.backward()
          self.optimizer.step()
          if batch_idx % log_interval == 0:
            print('Train Epoch: 1 [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
               batch_idx * len(data), len(self.train_loader.dataset),
              100. * batch_idx / len(self.train_loader), loss.item()))
            self.loss = loss.item()
            torch.save(self.model.state_dict(), 'model.pth')
            torch.save(self.optimizer.state_dict(), 'optimizer.pth')
        self.training_completed = True
        self.next(self.local_model_validation)

    @collaborator
    def local_model_validation(self):
        self.local_validation_score = inference(self.model,self.test_loader)
        print(f'Doing local model validation for collaborator {self.input}: {self.local_validation_score}')
        self.next(self.join, exclude=['training_completed'])

    @aggregator
    def join(self,inputs):
        self.average_loss = sum(input.loss for input in inputs)/len(inputs)
        self.aggregated_model_accuracy = sum(input.agg_validation_score for input in inputs)/len(inputs)
        self.local_model_accuracy = sum(input.local_validation_score for input in inputs)/len(inputs)
        print(f'Average aggregated model validation values = {self.aggregated_model_accuracy}')
        print(f'Average training loss = {self.average_loss}')
        print(f'Average local model validation values = {self.local_model_accuracy}')
        self.model = FedAvg([input.model for input in inputs])
        self.optimizer = [input.optimizer for input in inputs][0]
        self.current_round += 1
        if self.current_round < self.rounds:
            self.next(self.aggregated_model_validation, foreach='collaborators', exclude=['private'])
        else:
            self.next(self.end)

    @aggregator
    def end(self):
        print(f'This is the end of the flow')  
