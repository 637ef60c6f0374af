"""Pipeline's writes: judges, annotation jobs (work list and recorder, batch), generation, polishing, imports."""
