"""The wire format shared with the TypeScript side: ids, envelopes, JSON Schemas."""
