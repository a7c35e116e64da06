--- The cost model of data-parallel training in README.md ("Beyond one machine"), worked
-- from figures measured here.  Usage:
--   crater examples/bench/cost_model.lua MLP_MS CNN_MS [PACK_MLP_MS PACK_CNN_MS]
-- MLP_MS, CNN_MS: compute per step on one host (batch 128, one thread: the
-- dist.step.mlp / dist.step.cnn rows of make bench-dist); PACK_*: DDP's own cost per step
-- in a world of one (dist.step.*.ddp1 minus dist.step.*).
-- Per step, every host computes its batch of 128 (weak scaling), then the gradient
-- (G bytes, float32) is all-reduced.  Ring all-reduce: each host sends and receives
-- 2(n-1)/n * G bytes in 2(n-1) messages, so t_ar = 2(n-1)/n * G / B + 2(n-1) * a for
-- bandwidth B and per-message latency a (t_ar = t_bw + L).  Without overlap (what crater
-- builds: one bucket after backward) a step takes T1 = t_c + t_pack + t_bw + L.  Overlap
-- needs two buckets at least: the first (half the bytes) is reduced during backward (about
-- 2/3 of t_c), hiding h = min(2/3 t_c, t_bw/2 + L), and each costs its own L, so
-- T2 = t_c + t_pack + t_bw + 2L - h: a gain of min(2/3 t_c - L, t_bw/2), positive while
-- L = 2(n-1) a < 2/3 t_c.  Without buckets (one all-reduce per parameter tensor, k of them)
-- a step is t_c + t_bw + k L, with no packing.
local mlp_ms, cnn_ms = tonumber(arg[1]), tonumber(arg[2])
local pack = {mlp = tonumber(arg[3]) or 0, cnn = tonumber(arg[4]) or 0}
if not (mlp_ms and cnn_ms) then error("usage: cost_model.lua MLP_MS CNN_MS [PACK_MLP_MS PACK_CNN_MS]") end

local models = {
  {name = "mlp", params = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10, tensors = 6, ms = mlp_ms},
  {name = "cnn", params = 32 * 9 + 32 + 64 * 32 * 9 + 64 + 3136 * 128 + 128 + 128 * 10 + 10, tensors = 8, ms = cnn_ms},
}
-- payload bandwidth and latency per message (OpenMPI over TCP on 10 GbE; verbs on EDR IB)
local nets = {
  {name = "10 GbE", bw = 1.1e9, lat = 25e-6},
  {name = "100 Gb IB", bw = 11e9, lat = 1.5e-6},
}
local B = 128

print("| model | network | hosts | all-reduce ms | step ms | samples/s | efficiency | 2 buckets, overlapped | unbucketed |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for _, m in ipairs(models) do
  local G = 4 * m.params
  local tc, tp = m.ms * 1e-3, pack[m.name] * 1e-3
  for _, net in ipairs(nets) do
    for _, n in ipairs({8, 64}) do
      local bw_term = 2 * (n - 1) / n * G / net.bw
      local lat_term = 2 * (n - 1) * net.lat
      local t_ar = bw_term + lat_term
      local step = tc + tp + t_ar
      local over = tc + tp + bw_term + 2 * lat_term - math.min(2 / 3 * tc, bw_term / 2 + lat_term)
      -- one all-reduce per parameter tensor instead of one bucket: the latency term k times,
      -- and no packing
      local unb = tc + bw_term + m.tensors * lat_term
      print(string.format("| %s | %s | %d | %.2f | %.2f | %.0f | %.0f%% | %.0f | %.0f |", m.name, net.name, n,
        t_ar * 1e3, step * 1e3, n * B / step, 100 * tc / step, n * B / over, n * B / unb))
    end
  end
end
print()
for _, m in ipairs(models) do
  local G = 4 * m.params
  local tc, tp = m.ms * 1e-3, pack[m.name] * 1e-3
  for _, net in ipairs(nets) do
    -- bucketing pays once the latency it saves, (k-1) * 2(n-1) * a, passes the packing cost
    local n_bucket = 1 + tp / ((m.tensors - 1) * 2 * net.lat)
    -- overlap (two buckets) gains while 2(n-1) a < 2/3 t_c
    local n_over = 1 + tc / (3 * net.lat)
    print(string.format("%s on %s: G = %.2f MB; bucketing pays from %.1f hosts on; overlap with two buckets "
      .. "pays up to %.0f hosts", m.name, net.name, G / 1e6, n_bucket, n_over))
  end
end
