-- POST /api/v1/appointments: many residents book the same occurrences at once. Each thread walks the same
-- occurrences (slot id and date), sending its share of the residents' tokens for one occurrence on
-- consecutive requests (so on different connections at once) before moving to the next; a fresh
-- Idempotency-Key per request. Places go to the first `capacity` (201), the rest are refused (409).
-- done() prints the statuses it saw.
-- args: path of the targets file ("slot id<TAB>date" a line), path of the tokens file, number of wrk
-- threads, a nonce unique to this wrk run, the errand type, the note

local next_thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

local targets, mine = {}, {}
local next_target, next_token, counter = 1, 1, 0
local nonce, errand_type, note
-- Globals, not locals: done() reads them from each thread's state through thread:get().
created, refused, other, exhausted = 0, 0, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    local slot, day = line:match("^(%S+)\t(%S+)$")
    if slot then
      targets[#targets + 1] = { slot, day }
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
  nonce, errand_type, note = args[4], args[5], args[6]
end

function request()
  local target = targets[next_target]
  local slot, day
  if target == nil then
    -- Out of occurrences: an unknown slot fails visibly (404) rather than replaying full ones.
    exhausted = exhausted + 1
    slot, day = "sl_exhausted", "2000-01-03"
  else
    slot, day = target[1], target[2]
  end
  local token = mine[next_token]
  next_token = next_token + 1
  if next_token > #mine then
    next_token = 1
    next_target = next_target + 1
  end
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = nonce .. "-" .. thread_id .. "-" .. counter,
  }
  local body = string.format('{"slot_id": "%s", "date": "%s", "errand_type": "%s", "note": "%s"}',
    slot, day, errand_type, note)
  return wrk.format("POST", "/api/v1/appointments", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 409 then
    refused = refused + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = { created = 0, refused = 0, other = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  io.write(string.format("bench: status 201=%d 409=%d other=%d exhausted=%d\n",
    totals.created, totals.refused, totals.other, totals.exhausted))
end
