"""The delivery report: the fact API the checks record into (``facts``), the
pytest-html report pages (``html``, ``pages``, ``check``, ``summary``,
``history``), Allure names, labels and steps (``allure_steps``), attachments
(``attach``), the --lf carry-over (``carryover``, ``allure_carry``), where the
deliverables go (``layout``) and every report string (``i18n``)."""
