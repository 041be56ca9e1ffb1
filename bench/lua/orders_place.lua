-- POST /api/v1/orders as one of several signed-in residents, with a fresh Idempotency-Key per request.
-- args: path of the tokens file (one bearer token a line), JSON body, a nonce unique to this wrk run

local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

local tokens = {}
local body, nonce
local counter = 0

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      tokens[#tokens + 1] = line
    end
  end
  body, nonce = args[2], args[3]
end

function request()
  counter = counter + 1
  -- Residents in turn, so no one resident piles up thousands of open orders (duplicate checks stay real).
  local token = tokens[(counter + thread_id) % #tokens + 1]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = nonce .. "-" .. thread_id .. "-" .. counter,
  }
  return wrk.format("POST", nil, headers, body)
end
