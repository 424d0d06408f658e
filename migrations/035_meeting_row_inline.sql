-- Keep a meeting's row in one piece instead of TOASTing google_api_response.
--
-- A booked meeting's row is about 2.6 kB, most of it Google's event
-- resource (google_api_response, about 1.5 kB). Over PostgreSQL's 2 kB
-- threshold, every booking's INSERT first tried to compress that value
-- (pglz, which rarely wins on it) and then moved it out of line: a second
-- heap insert and an index insert into the TOAST table, with their WAL.
-- tests/bench found that to be a tenth of the server's CPU per booking.
-- With the target at its maximum the toaster leaves rows up to a page
-- whole; larger ones are compressed and moved out of line as before.
-- Side by side, 5,000 bookings at L=100: PostgreSQL CPU 4.7-5.6 s to
-- 4.0-4.8 s, 812-869 to 879-952 meetings/s. No data changes; rows already
-- TOASTed stay as they are until updated.

ALTER TABLE calendar_meetings SET (toast_tuple_target = 8160);
