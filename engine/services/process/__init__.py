"""Process definitions and drafts: deploy, version, compile, check and save BPMN."""
