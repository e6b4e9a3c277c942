-- wrk script: a pipeline of `depth` GET / requests (default 16) per write,
-- the counterpart of `servelab load --pipeline 16`.
-- Usage: wrk -s scripts/wrk-pipeline.lua URL -- 16
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
