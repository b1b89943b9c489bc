-- sysbench script: what MariaDB/MySQL serves itself for the server's statements.
--
--   sysbench bench/dblimits/limits.lua --db-driver=mysql --mysql-host=... --mysql-db=...
--     --threads=32 --time=8 --mode=guard|rotation --sids=FILE --now=... --expires=... run
--
-- guard:    the guard's query (`ServerRead::live_account`), one per event.
-- rotation: the statements of one successful `refreshToken`, as the server sends them:
--           the token, its session and its account by hash, then in one READ COMMITTED
--           transaction spend it, refresh the session, insert the successor.
-- The statements were captured from the server (README.md) and run here as prepared
-- statements, as sqlx runs them; the rotation's three are `src/store/rotations/server.rs`'s
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
local FIND = [[SELECT `refresh_tokens`.`id` AS `A_id`, `refresh_tokens`.`session_id` AS `A_session_id`, `refresh_tokens`.`token_hash` AS `A_token_hash`, `refresh_tokens`.`created_at` AS `A_created_at`, `refresh_tokens`.`expires_at` AS `A_expires_at`, `refresh_tokens`.`spent_at` AS `A_spent_at`, `sessions`.`id` AS `B_id`, `sessions`.`user_id` AS `B_user_id`, `sessions`.`created_at` AS `B_created_at`, `sessions`.`expires_at` AS `B_expires_at`, `sessions`.`revoked_at` AS `B_revoked_at`, `sessions`.`last_used_at` AS `B_last_used_at`, `sessions`.`created_ip` AS `B_created_ip`, `sessions`.`created_user_agent` AS `B_created_user_agent`, `sessions`.`last_ip` AS `B_last_ip`, `sessions`.`last_user_agent` AS `B_last_user_agent`, `sessions`.`amr` AS `B_amr`, `users`.`id` AS `C_id`, `users`.`email` AS `C_email`, `users`.`username` AS `C_username`, `users`.`created_at` AS `C_created_at`, `users`.`updated_at` AS `C_updated_at`, `users`.`email_verified_at` AS `C_email_verified_at` FROM `refresh_tokens` LEFT JOIN `sessions` ON `refresh_tokens`.`session_id` = `sessions`.`id` INNER JOIN `users` ON `sessions`.`user_id` = `users`.`id` WHERE `refresh_tokens`.`token_hash` = ? LIMIT ?]]
local SPEND = [[UPDATE refresh_tokens SET spent_at = ? WHERE id = ? AND spent_at IS NULL]]
local REFRESHED = [[UPDATE sessions SET expires_at = ?, last_used_at = ?, last_ip = ?, last_user_agent = NULL WHERE id = ? AND revoked_at IS NULL]]
local INSERT = [[INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at, spent_at) VALUES (?, ?, ?, ?, ?, NULL)]]

local function unhex(h)
  return (h:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
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
    -- The live token of this thread's session: the start of its chain.
    local id, hash = con:query_row(string.format(
      "SELECT HEX(id), token_hash FROM refresh_tokens WHERE session_id = x'%s' "
      .. "AND spent_at IS NULL ORDER BY created_at DESC LIMIT 1", hex(sid)))
    token_id, token_hash = unhex(id), hash
    find = prepare(FIND, {{V, 64}, {I}})
    spend = prepare(SPEND, {{V, 32}, {V, 16}})
    refreshed = prepare(REFRESHED, {{V, 32}, {V, 32}, {V, 64}, {V, 16}})
    insert = prepare(INSERT, {{V, 16}, {V, 16}, {V, 64}, {V, 32}, {V, 32}})
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
  run(spend, {now, token_id})
  run(refreshed, {expires, now, "127.0.0.1", sid})
  local new_id, new_hash = random_bytes(16), hex(random_bytes(32))
  run(insert, {new_id, sid, new_hash, now, expires})
  con:query("COMMIT")
  token_id, token_hash = new_id, new_hash
end

function thread_done()
  con:disconnect()
end
