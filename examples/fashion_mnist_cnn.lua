--- Fashion-MNIST with a small convolutional network: conv 1->32 3x3 pad 1, ReLU,
-- maxpool 2; conv 32->64 likewise; linear 3136->128, ReLU; linear 128->10.  Adam (lr 1e-3),
-- batch 128, 3 epochs; about 90% test accuracy (PyTorch 1.13: 86.8% after 1 epoch, 89.8% after 3).
-- Usage: crater examples/fashion_mnist_cnn.lua [--epochs 3] [--threads 2]
--          [--seed 2] [--checkpoint fashion_mnist_cnn.ckpt] [--resume] [--data DIR]
-- Needs the Debian package dataset-fashion-mnist.  After every epoch it saves the model,
-- the optimizer and the epoch to the checkpoint; --resume continues from it and gives
-- the same numbers as an uninterrupted run.  The training job is fashion_mnist_train.lua.
local crater = rawget(_G, "crater") or require "crater"
local nn = crater.nn
local train = dofile((arg and arg[0] or ""):match("^(.-)[^/]*$") .. "fashion_mnist_train.lua")

return train {
  name = "fashion_mnist_cnn", epochs = 3, seed = 2, image = true,
  model = function()
    return nn.Sequential(
      nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),    -- 32 x 14 x 14
      nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),   -- 64 x 7 x 7
      nn.Flatten(),
      nn.Linear(3136, 128), nn.ReLU(),
      nn.Linear(128, 10))
  end,
}
