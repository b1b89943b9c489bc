-- sysbench script: what MariaDB/MySQL serves itself for the server's statements.
--
--   sysbench bench/dblimits/limits.lua --db-driver=mysql --mysql-host=... --mysql-db=...
--     --threads=32 --time=8 --mode=guard|rotation --sids=FILE --now=... --expires=... run
--
-- guard:    the guard's query (`ServerRead::live_account`), one per event.
-- rotation: the statements of one successful `refreshToken`, as the server sends them:
--           the session's refresh-token chain, its session and its account by the chain's
--           hash, then in one READ COMMITTED transaction move the chain on a generation
--           and refresh the session.
-- The statements were captured from the server (README.md) and run here as prepared
-- statements, as sqlx runs them; the rotation's two are `src/store/rotations/server.rs`'s
-- (the server binds the user agent where this has a literal NULL). FILE holds session
-- ids (32 hex digits a line): thread k uses the k-th (modulo their count), for the guard
-- as for its rotation chain, so that threads never wait on each other's rows; the
-- server's loads also spread over sessions.

sysbench.cmdline.options = {
  mode = {"guard or rotation", "guard"},
  sids = {"file of session ids, 32 hex digits a line", ""},
  now = {"the instant bound as the current time (YYYY-MM-DD hh:mm:ss.ffffff)", ""},
  expires = {"the expiry bound for a refreshed session and its new token", ""},
  set_per_txn = {"an experiment: SET TRANSACTION ISOLATION LEVEL READ COMMITTED before each "
    .. "BEGIN, as the server sends it (instead of once per connection)", false},
}

local GUARD = [[SELECT u.`id`, u.`email`, u.`username`, u.`created_at`, u.`updated_at`, u.`email_verified_at` FROM `sessions` s INNER JOIN `users` u ON u.`id` = s.`user_id` WHERE s.`id` = ? AND s.`revoked_at` IS NULL AND s.`expires_at` > ? LIMIT 1]]
local FIND = [[SELECT `refresh_tokens`.`id` AS `A_id`, `refresh_tokens`.`session_id` AS `A_session_id`, `refresh_tokens`.`token_hash` AS `A_token_hash`, `refresh_tokens`.`created_at` AS `A_created_at`, `refresh_tokens`.`expires_at` AS `A_expires_at`, `refresh_tokens`.`spent_at` AS `A_spent_at`, `refresh_tokens`.`generation` AS `A_generation`, `refresh_tokens`.`rotated_at` AS `A_rotated_at`, `sessions`.`id` AS `B_id`, `sessions`.`user_id` AS `B_user_id`, `sessions`.`created_at` AS `B_created_at`, `sessions`.`expires_at` AS `B_expires_at`, `sessions`.`revoked_at` AS `B_revoked_at`, `sessions`.`last_used_at` AS `B_last_used_at`, `sessions`.`created_ip` AS `B_created_ip`, `sessions`.`created_user_agent` AS `B_created_user_agent`, `sessions`.`last_ip` AS `B_last_ip`, `sessions`.`last_user_agent` AS `B_last_user_agent`, `sessions`.`amr` AS `B_amr`, `users`.`id` AS `C_id`, `users`.`email` AS `C_email`, `users`.`username` AS `C_username`, `users`.`created_at` AS `C_created_at`, `users`.`updated_at` AS `C_updated_at`, `users`.`email_verified_at` AS `C_email_verified_at` FROM `refresh_tokens` LEFT JOIN `sessions` ON `refresh_tokens`.`session_id` = `sessions`.`id` INNER JOIN `users` ON `sessions`.`user_id` = `users`.`id` WHERE `refresh_tokens`.`token_hash` = ? LIMIT ?]]
local ADVANCE = [[UPDATE refresh_tokens SET generation = ?, rotated_at = ?, expires_at = ? WHERE id = ? AND generation = ? AND spent_at IS NULL]]
local REFRESHED = [[UPDATE sessions SET expires_at = ?, last_used_at = ?, last_ip = ?, last_user_agent = NULL WHERE id = ? AND revoked_at IS NULL]]

local function unhex(h)
  return (h:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end


local function prepare(sql, types)
  local stmt = con:prepare(sql)
  local params = {}
  for i, ty in ipairs(types) do
    params[i] = stmt:bind_create(ty[1], ty[2])
  end
  if #params > 0 then stmt:bind_param(unpack(params)) end
  return {stmt = stmt, params = params}
end

local function run(p, values)
  for i, v in ipairs(values) do p.params[i]:set(v) end
  return p.stmt:execute()
end

function thread_init()
  drv = sysbench.sql.driver()
  con = drv:connect()
  -- As the server's write transactions run (src/store/mod.rs).
  con:query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
  math.randomseed(os.time() + sysbench.tid * 7919)
  local sids = {}
  for line in io.lines(sysbench.opt.sids) do
    if #line == 32 then sids[#sids + 1] = unhex(line) end
  end
  sid = sids[(sysbench.tid % #sids) + 1]
  local V, I = sysbench.sql.type.VARCHAR, sysbench.sql.type.INT
  if sysbench.opt.mode == "guard" then
    guard = prepare(GUARD, {{V, 16}, {V, 32}})
  else
    -- This thread's session's chain and its live generation.
    local id, hash, gen = con:query_row(string.format(
      "SELECT HEX(id), token_hash, generation FROM refresh_tokens WHERE session_id = x'%s' "
      .. "AND spent_at IS NULL ORDER BY created_at DESC LIMIT 1", hex(sid)))
    token_id, token_hash, generation = unhex(id), hash, tonumber(gen)
    find = prepare(FIND, {{V, 64}, {I}})
    advance = prepare(ADVANCE, {{sysbench.sql.type.BIGINT}, {V, 32}, {V, 32}, {V, 16},
      {sysbench.sql.type.BIGINT}})
    refreshed = prepare(REFRESHED, {{V, 32}, {V, 32}, {V, 64}, {V, 16}})
    set_isolation = prepare("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", {})
  end
end

function event()
  local now, expires = sysbench.opt.now, sysbench.opt.expires
  if sysbench.opt.mode == "guard" then
    run(guard, {sid, now})
    return
  end
  run(find, {token_hash, 1})
  if sysbench.opt.set_per_txn then set_isolation.stmt:execute() end
  con:query("BEGIN")
  run(advance, {generation + 1, now, expires, token_id, generation})
  run(refreshed, {expires, now, "127.0.0.1", sid})
  con:query("COMMIT")
  generation = generation + 1
end

function thread_done()
  con:disconnect()
end
