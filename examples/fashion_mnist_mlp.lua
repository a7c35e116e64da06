--- Fashion-MNIST with a multilayer perceptron: 784-512-256-10, ReLU, Adam (lr 1e-3),
-- batch 128, 5 epochs; about 88% test accuracy (PyTorch 1.13: 87.2-88.1%).
-- Usage: crater examples/fashion_mnist_mlp.lua [--epochs 5] [--threads 2]
--          [--seed 1] [--checkpoint fashion_mnist_mlp.ckpt] [--resume] [--data DIR]
-- Needs the Debian package dataset-fashion-mnist.  After every epoch it saves the model,
-- the optimizer and the epoch to the checkpoint; --resume continues from it and gives
-- the same numbers as an uninterrupted run.  The training job is fashion_mnist_train.lua.
local crater = rawget(_G, "crater") or require "crater"
local nn = crater.nn
local train = dofile((arg and arg[0] or ""):match("^(.-)[^/]*$") .. "fashion_mnist_train.lua")

return train {
  name = "fashion_mnist_mlp", epochs = 5, seed = 1,
  model = function()
    return nn.Sequential(
      nn.Linear(784, 512), nn.ReLU(),
      nn.Linear(512, 256), nn.ReLU(),
      nn.Linear(256, 10))
  end,
}
