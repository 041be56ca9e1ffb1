-- POST /api/v1/orders/<id>/take on pooled orders, every contender organization's admin on every order:
-- each thread walks the same orders, sending its share of the admins' tokens for one order on consecutive
-- requests (so on different connections at once) before moving to the next order. One take per order
-- may win (200); every other must be refused (409). done() prints the statuses it saw.
-- args: path of the order ids file, path of the tokens file, number of wrk threads

local next_thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

local ids, mine = {}, {}
local next_order, next_token = 1, 1
-- Globals, not locals: done() reads them from each thread's state through thread:get().
won, refused, other, exhausted = 0, 0, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      ids[#ids + 1] = line
    end
  end
  local nthreads, k = tonumber(args[3]), 0
  for line in io.lines(args[2]) do
    if line ~= "" then
      if k % nthreads == thread_id then
        mine[#mine + 1] = line
      end
      k = k + 1
    end
  end
end

function request()
  local id = ids[next_order]
  if id == nil then
    -- Out of orders: an unknown id fails visibly (404) rather than replaying taken ones.
    exhausted = exhausted + 1
    id = "od_exhausted"
  end
  local token = mine[next_token]
  next_token = next_token + 1
  if next_token > #mine then
    next_token = 1
    next_order = next_order + 1
  end
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  return wrk.format("POST", "/api/v1/orders/" .. id .. "/take", headers, "{}")
end

function response(status, headers, body)
  if status == 200 then
    won = won + 1
  elseif status == 409 then
    refused = refused + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { won = 0, refused = 0, other = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  io.write(string.format("bench: status 200=%d 409=%d other=%d exhausted=%d\n",
    totals.won, totals.refused, totals.other, totals.exhausted))
end
