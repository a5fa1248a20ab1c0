-- One SCIM request shape for wrk, chosen by the benchmark (bench/wrk.py), and a JSON summary.
--
-- wrk -s bench/wrk/scim.lua URL -- METHOD PATH BODY_FILE KEYS_FILE PICK RUN
--
-- PATH and the text of BODY_FILE ("-": no body) are templates: "__KEY__" becomes a key from
-- KEYS_FILE (one a line; a user id or a userName), "__N__" a number unique to this request
-- within the run (RUN, a prefix, keeps it unique across runs), so POSTs send fresh userNames.
-- PICK is "random" (any key, each time), "cycle" (the keys in turn: consecutive requests name
-- distinct resources) or "first" (always the first key: every request to the same resource).
-- Headers (the bearer token, the content type) come from wrk's -H options.

local method, path, body, keys, pick, run
local counter = 0
local threads = {}

local function read_lines(name)
  local lines = {}
  for line in io.lines(name) do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  return lines
end

local function read_all(name)
  local file = assert(io.open(name, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

function setup(thread)
  thread:set("thread_number", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  method, path = args[1], args[2]
  body = args[3] ~= "-" and read_all(args[3]) or nil
  keys = read_lines(args[4])
  pick, run = args[5], args[6]
  math.randomseed(thread_number or 1)
end

local function key()
  if pick == "first" then
    return keys[1]
  elseif pick == "cycle" then
    return keys[(counter % #keys) + 1]
  end
  return keys[math.random(#keys)]
end

function request()
  counter = counter + 1
  local unique = run .. "t" .. (thread_number or 1) .. "n" .. counter
  local chosen = key()
  local function fill(text)
    -- Replacements are functions, so a "%" in a key is taken literally.
    text = text:gsub("__KEY__", function() return chosen end)
    return (text:gsub("__N__", function() return unique end))
  end
  return wrk.format(method, wrk.path .. fill(path), nil, body and fill(body) or nil)
end

function done(summary, latency, requests)
  local errors = summary.errors
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    errors = {
      connect = errors.connect,
      read = errors.read,
      write = errors.write,
      status = errors.status,
      timeout = errors.timeout,
    },
    latency_us = {
      mean = latency.mean,
      max = latency.max,
      p50 = latency:percentile(50),
      p90 = latency:percentile(90),
      p99 = latency:percentile(99),
      p999 = latency:percentile(99.9),
    },
  }
  local function encode(value)
    if type(value) == "table" then
      local fields = {}
      for name, inner in pairs(value) do
        fields[#fields + 1] = string.format("%q:%s", name, encode(inner))
      end
      return "{" .. table.concat(fields, ",") .. "}"
    end
    return string.format("%.17g", value)
  end
  io.write("WRK_JSON ", encode(out), "\n")
end
