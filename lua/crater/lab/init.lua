--- crater.lab: the optimization lab. Test functions with known minima, optimizer races on
-- them and on models, hyper-parameter sweeps, the LR range test, gnuplot pictures and
-- Markdown and HTML reports.
-- @usage local lab = crater.lab
-- local r = lab.race{fn = "rosenbrock", optimizers = {"sgd", "momentum", "adam"}, out = "out/race"}
-- print(r:table()); lab.show(r)
local lab = {}

lab.functions = require "crater.lab.functions"
lab.contestants = require "crater.lab.contestants"
lab.schedule = require "crater.lab.schedule"

local race = require "crater.lab.race"
lab.race = race.race

--- Races optimizers on a model; see crater.lab.train_race's module for the options.
function lab.train_race(o) return require("crater.lab.train_race").train_race(o) end

--- Hyper-parameter sweep; see crater.lab.sweep.
function lab.sweep(o) return require("crater.lab.sweep").sweep(o) end

--- The LR range test; see crater.lab.lr_find.
function lab.lr_find(o) return require("crater.lab.lr_find").lr_find(o) end

--- Draws results (a race, a train race, a sweep, an lr_find) or a test function in the
-- terminal with gnuplot's dumb terminal; returns the text drawn.
function lab.show(what, o) return require("crater.lab.plot").show(what, o) end

--- Writes an index page linking report.html files; see crater.lab.html.index.
function lab.index(path, reports, title) return require("crater.lab.html").index(path, reports, title) end

lab.Logger = require "crater.lab.logger"
lab.ConfusionMatrix = require "crater.lab.confusion"

lab.plot = setmetatable({}, {__index = function(_, k) return require("crater.lab.plot")[k] end})

return lab
