from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from annotate.models import Aspect, Campaign
        from annotate.selectors import campaign_for_labeling_forget

        # Edits made in this process show on its next labeling request, not after the cache's TTL.
        for model in (Campaign, Aspect):
            post_save.connect(
                campaign_for_labeling_forget, sender=model, dispatch_uid=f"forget-{model.__name__}"
            )
            post_delete.connect(
                campaign_for_labeling_forget, sender=model, dispatch_uid=f"forget-del-{model.__name__}"
            )
        m2m_changed.connect(
            campaign_for_labeling_forget, sender=Campaign.aspects.through, dispatch_uid="forget-aspects"
        )
