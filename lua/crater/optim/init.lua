--- crater.optim: the optimizers and the learning-rate schedulers.
-- Every optimizer is a class made from `Optimizer` (see optimizer.lua) and is built as
-- `crater.optim.Name(params, opts)` with PyTorch's option names and defaults. The
-- built-ins (SGD, Adam, AdamW, Adagrad, RMSprop, Adadelta, Adamax, NAdam, RAdam, ASGD,
-- Rprop) update each parameter with one fused C kernel; LBFGS and Torch7's CG, FISTA,
-- CMAES and DE work on the flattened parameters with tensor operations, in Lua.
-- https://pytorch.org/docs/1.13/optim.html
-- @usage local opt = crater.optim.Adam(model:parameters(), {lr = 1e-3})
-- local sched = crater.optim.lr_scheduler.StepLR(opt, {step_size = 30, gamma = 0.1})
return {
  Optimizer = require "crater.optim.optimizer",
  SGD = require "crater.optim.sgd",
  Adam = require "crater.optim.adam",
  AdamW = require "crater.optim.adamw",
  Adagrad = require "crater.optim.adagrad",
  RMSprop = require "crater.optim.rmsprop",
  Adadelta = require "crater.optim.adadelta",
  Adamax = require "crater.optim.adamax",
  NAdam = require "crater.optim.nadam",
  RAdam = require "crater.optim.radam",
  ASGD = require "crater.optim.asgd",
  Rprop = require "crater.optim.rprop",
  LBFGS = require "crater.optim.lbfgs",
  AdamWScheduleFree = require "crater.optim.adamw_schedulefree",
  SGDScheduleFree = require "crater.optim.sgd_schedulefree",
  SophiaG = require "crater.optim.sophiag",
  Prodigy = require "crater.optim.prodigy",
  Muon = require "crater.optim.muon",
  MuonWithAuxAdam = require "crater.optim.muon_aux_adam",
  Lion = require "crater.optim.lion",
  LAMB = require "crater.optim.lamb",
  LARS = require "crater.optim.lars",
  AdaBelief = require "crater.optim.adabelief",
  Adan = require "crater.optim.adan",
  Adafactor = require "crater.optim.adafactor",
  Lookahead = require "crater.optim.lookahead",
  SAM = require "crater.optim.sam",
  swa_utils = require "crater.optim.swa_utils",
  CG = require "crater.optim.cg",
  FISTA = require "crater.optim.fista",
  CMAES = require "crater.optim.cmaes",
  DE = require "crater.optim.de",
  lr_scheduler = require "crater.optim.lr_scheduler",
}
