-- The same request on every call: wrk formats it once per thread (no request() function keeps wrk on
-- its static fast path), so the load generator costs next to nothing per request.
-- args: method, JSON body ("" for none), bearer token ("" for none)

function init(args)
  wrk.method = args[1] or "GET"
  local body, token = args[2], args[3]
  if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
  end
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end
