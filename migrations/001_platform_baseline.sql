-- The platform tables the plan says already exist, so this project runs on its
-- own database too. Everything is IF NOT EXISTS: on the platform's database
-- this file changes nothing. No NOT NULL column beyond the plan's, so the
-- platform's own inserts keep working.

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE IF NOT EXISTS users (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email       VARCHAR(255) NOT NULL,
    name        VARCHAR(255) NOT NULL,
    created_at  TIMESTAMPTZ DEFAULT NOW(),
    updated_at  TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS contacts (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       UUID REFERENCES users(id) ON DELETE CASCADE,
    phone_number  VARCHAR(255),
    email         VARCHAR(255),
    name          VARCHAR(255),
    company       VARCHAR(255),
    created_at    TIMESTAMPTZ DEFAULT NOW(),
    updated_at    TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_contacts_user_phone ON contacts(user_id, phone_number);

-- calls.transcript_id and transcripts.call_id point at each other; the
-- constraint on calls is added once transcripts exists.
CREATE TABLE IF NOT EXISTS calls (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        UUID REFERENCES users(id) ON DELETE CASCADE,
    phone_number   VARCHAR(255),
    recording_url  TEXT,
    transcript_id  UUID,
    status         VARCHAR(50),
    created_at     TIMESTAMPTZ DEFAULT NOW(),
    updated_at     TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS transcripts (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id     UUID REFERENCES calls(id) ON DELETE CASCADE,
    user_id     UUID REFERENCES users(id) ON DELETE CASCADE,
    content     TEXT,
    created_at  TIMESTAMPTZ DEFAULT NOW(),
    updated_at  TIMESTAMPTZ DEFAULT NOW()
);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'calls_transcript_id_fkey') THEN
        ALTER TABLE calls ADD CONSTRAINT calls_transcript_id_fkey
            FOREIGN KEY (transcript_id) REFERENCES transcripts(id) ON DELETE SET NULL;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS lead_analytics (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id             UUID REFERENCES calls(id) ON DELETE SET NULL,
    user_id             UUID REFERENCES users(id) ON DELETE CASCADE,
    phone_number        VARCHAR(255),
    extracted_name      VARCHAR(255),
    extracted_email     VARCHAR(255),
    company_name        VARCHAR(255),
    demo_book_datetime  VARCHAR(255),
    reasoning           JSONB,
    lead_status_tag     VARCHAR(50),
    smart_notification  VARCHAR(500),
    analysis_type       VARCHAR(50) DEFAULT 'individual',
    created_at          TIMESTAMPTZ DEFAULT NOW(),
    updated_at          TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_lead_analytics_user ON lead_analytics(user_id);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'contacts', 'calls', 'transcripts', 'lead_analytics'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'update_' || t || '_updated_at') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()',
                           'update_' || t || '_updated_at', t);
        END IF;
    END LOOP;
END
$$;
