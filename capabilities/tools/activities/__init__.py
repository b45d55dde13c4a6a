"""Tool activities: each tool Lucy can use, reached over HTTP through an injected client."""
