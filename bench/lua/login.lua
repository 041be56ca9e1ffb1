-- POST /api/v1/auth/login with a fresh wx.login code per request: a code works exactly once, so the
-- harness issues them all before the timed run and each thread takes every nth line of the file.
-- args: path of the codes file (one code a line), number of wrk threads

local next_thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

local codes = {}
local next_code = 1
-- Global, not local: done() reads it from each thread's state through thread:get().
exhausted = 0

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  local line_no = 0
  for line in io.lines(path) do
    if line ~= "" then
      if line_no % nthreads == thread_id then
        codes[#codes + 1] = line
      end
      line_no = line_no + 1
    end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local code = codes[next_code]
  if code then
    next_code = next_code + 1
  else
    -- Out of codes: an invalid one fails visibly (non-2xx) instead of quietly re-sending a used code,
    -- and done() reports how many went out so the harness can tell "slow" from "starved".
    exhausted = exhausted + 1
    code = "bench-codes-exhausted"
  end
  return wrk.format(nil, nil, nil, '{"code":"' .. code .. '"}')
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("exhausted") or 0)
  end
  io.write(string.format("bench: codes exhausted: %d\n", total))
end
