-- The install's API token never stays in a capture. A browser sends it, as the window's
-- sign-in cookie, to every port of the host, the webhook port included, and earlier
-- versions stored it with that delivery's headers (and exported and forwarded it).
-- Deliveries are now stored without it; here it is taken out of those already stored.
UPDATE events
SET headers = replace(headers, (SELECT value FROM settings WHERE key = 'api_token'),
                      '[Hookscope API token removed]')
WHERE instr(headers, (SELECT value FROM settings WHERE key = 'api_token')) > 0;
