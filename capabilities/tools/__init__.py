"""The tools the model may call: one ToolSpec per tool, the registry."""
