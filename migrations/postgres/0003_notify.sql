-- Wakes followers of the log (every server's read-model projector) when
-- events are appended: one notification per appending statement, sent at
-- commit, so a follower never wakes for a batch that rolled back. The
-- SQLite log has no such thing: one process owns it and wakes its own
-- followers in memory.
CREATE FUNCTION tollgate_notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tollgate_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_notify_events();
