"""The skills' workflow code: what loading a skill changes in a task (:mod:`.loading`) and
``LucySkillDraftWorkflow``, the Save as skill draft (:mod:`.draft`)."""
