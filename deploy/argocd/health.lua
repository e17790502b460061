-- Argo CD health check for bellwether.dev/ModelDeployment.
--
-- Argo CD shows this health per resource and waits for Healthy between sync waves, so it follows the
-- rollout's phase, but only for a spec the operator has already seen:
--   a Degraded condition for the current spec      -> Degraded  (invalid spec, unreachable region, rollback)
--   status.observedGeneration < metadata.generation -> Progressing (the new spec is not acted on yet)
--   phase Healthy                                   -> Healthy
--   phase Pending or Progressing (or baking)        -> Progressing
--   phase Paused                                    -> Suspended (a person's pause, a pause step without a
--                                                      duration, or analysis that stayed inconclusive)
--   phase Degraded or RolledBack                    -> Degraded
-- Installed as resource.customizations.health.bellwether.dev_ModelDeployment in argocd-cm
-- (docs/argocd.md). Written for Lua 5.1, the dialect of Argo CD's interpreter.

local hs = {}
local meta = obj.metadata or {}
local status = obj.status

local function cli(verb)
  local command = "kubectl bellwether " .. verb .. " " .. (meta.name or "NAME")
  if meta.namespace ~= nil then
    command = command .. " -n " .. meta.namespace
  end
  return "`" .. command .. "`"
end

-- A condition set for an older spec says nothing about the current one.
local function current(condition)
  return condition.observedGeneration == nil or meta.generation == nil
    or condition.observedGeneration >= meta.generation
end

local function retry_hint()
  return "; change the spec, or " .. cli("retry") .. " to roll the same revision out again"
end

local function said(condition)
  local text = condition.reason or "Degraded"
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

local degraded = nil
if status ~= nil and status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Degraded" and c.status == "True" and current(c) then
      degraded = c
    end
  end
end

-- Checked first: the operator refuses an invalid spec without recording its generation as observed.
if degraded ~= nil then
  hs.status = "Degraded"
  hs.message = said(degraded)
  if status.phase == "RolledBack" then
    hs.message = hs.message .. retry_hint()
  end
  return hs
end

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the Bellwether operator to pick up the ModelDeployment"
  return hs
end

if meta.generation ~= nil and status.observedGeneration < meta.generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to act on generation " .. tostring(meta.generation)
    .. " (status describes generation " .. tostring(status.observedGeneration) .. ")"
  return hs
end

local phase = status.phase or "Pending"
local message = status.message
if message == nil or message == "" then
  message = "phase " .. phase
end
local progress = status.progress or {}

if phase == "Healthy" then
  hs.status = "Healthy"
  hs.message = message
elseif phase == "Pending" or phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = message
elseif phase == "Paused" then
  hs.status = "Suspended"
  if progress.pausedReason ~= nil then
    hs.message = progress.pausedReason .. ": " .. (progress.pausedMessage or message) .. "; "
      .. cli("resume") .. " measures again, or promote or abort"
  elseif progress.pausedByUser then
    hs.message = message .. "; " .. cli("resume") .. " to continue"
  else
    hs.message = message .. "; " .. cli("promote") .. " to continue"
  end
elseif phase == "Degraded" or phase == "RolledBack" then
  hs.status = "Degraded"
  hs.message = message
  if phase == "RolledBack" then
    hs.message = hs.message .. retry_hint()
  end
else
  hs.status = "Unknown"
  hs.message = "unknown phase " .. phase
end
return hs
