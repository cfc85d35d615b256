"""Support policies: the model, policy files, presets, support-hours arithmetic."""
