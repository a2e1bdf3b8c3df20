"""An ordinary PyTorch CNN for 28x28 grey images (MNIST-sized), to try
`netbuilder import resources/pytorch/my_model.py --class Net --out net.json`.

The importer runs this file, traces Net with torch.fx and maps each layer to a catalog
node. The input shape is not written anywhere: the importer infers (1, 28, 28) from the
layers (the first is a Conv2d with 1 input channel; the Linear after two 2x2 poolings
takes 16 x 7 x 7 features). Give --input-shape 1,28,28, or an attribute
``example_input = torch.zeros(1, 1, 28, 28)``, where a model does not tell.
"""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.bn(self.conv2(x))))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))
