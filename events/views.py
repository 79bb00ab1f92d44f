"""The catalogue pages: thin views over `events.selectors`."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.generic import ListView, TemplateView

from events.models import Event
from events.selectors import availability_for_event, event_available, event_list_published


class EventListView(ListView):
    template_name = "events/event_list.html"
    context_object_name = "events"
    paginate_by = 20

    def get_queryset(self):
        params = self.request.GET
        return event_list_published(
            q=params.get("q") or None,
            city=params.get("city") or None,
            category=params.get("category") or None,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for event in context["events"]:
            event.available = event_available(event)
        context["q"] = self.request.GET.get("q", "")
        return context


class EventDetailView(TemplateView):
    template_name = "events/event_detail.html"

    def get_context_data(self, **kwargs):
        event = get_object_or_404(Event.objects.select_related("organizer"), pk=kwargs["pk"])
        if event.status == Event.Status.DRAFT:
            raise Http404
        return {**super().get_context_data(**kwargs), "event": event,
                "availability": availability_for_event(event=event)}
