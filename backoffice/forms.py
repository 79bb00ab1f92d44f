"""Admin saves and actions that call the services, and show a refusal like a validation error.

`save_model` and `save_formset` call the services (`event_create`/`update`,
`ticket_type_create`/`update`/`delete`) once, with what the forms cleaned. A
`DomainError` leaves the admin's transaction as `ServiceRejected`, so the whole
save (the event and all its ticket types) is rolled back; the same POST is then
validated again with the error on the form, field or row it belongs to.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from backoffice.local_time import zone_or_none
from core.errors import DomainError


class ServiceRejected(Exception):
    """A service refused the save: errors by form prefix (None: the main form), or for a formset."""

    def __init__(self, *, prefix: str | None = None, formset_prefix: str | None = None,
                 error: DomainError, label: str = "") -> None:
        self.prefix, self.formset_prefix, self.error, self.label = prefix, formset_prefix, error, label
        super().__init__(error.detail)


def add_domain_error(form: forms.BaseForm, error: DomainError) -> None:
    """Put a domain error on the fields it names, and its message on the form when it says more."""
    field_messages = []
    for field, field_errors in (error.errors or {}).items():
        target = field if field in form.fields and field != NON_FIELD_ERRORS else None
        form.add_error(target, list(field_errors))
        field_messages.extend(str(m) for m in field_errors)
    if error.detail not in field_messages:
        form.add_error(None, error.detail)


class ServiceErrorsForm(forms.ModelForm):
    """A ModelForm that shows the error a service raised for it on the previous pass."""

    service_errors: ServiceRejected | None = None

    def __init__(self, *args, service_errors: ServiceRejected | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if service_errors is not None:
            self.service_errors = service_errors

    def clean(self):
        cleaned_data = super().clean()
        rejected = self.service_errors
        if rejected is not None and rejected.formset_prefix is None and rejected.prefix == self.prefix:
            add_domain_error(self, rejected.error)
        return cleaned_data

    def has_changed(self):
        # A row the service refused must be validated (and shown) again even if unchanged.
        rejected = self.service_errors
        if rejected is not None and rejected.formset_prefix is None and rejected.prefix == self.prefix:
            return True
        return super().has_changed()


class ServiceErrorsInlineFormSet(BaseInlineFormSet):
    """An inline formset that passes the previous pass's error to its forms, or shows it itself.

    A refused deletion is shown on the formset: Django does not validate rows
    marked for deletion, so an error on the row would not stop the save.
    """

    def __init__(self, *args, service_errors: ServiceRejected | None = None, **kwargs):
        self.service_errors = service_errors
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        if self.service_errors is not None:
            kwargs["service_errors"] = self.service_errors
        return kwargs

    def clean(self):
        super().clean()
        if any(form.instance._state.adding for form in self.initial_forms):
            # A row id that is not (or no longer) among this parent's rows in the
            # user's scope: deleted meanwhile, or forged. Django would save it as new.
            raise forms.ValidationError(_("A row of this list no longer exists; reload the page."))
        rejected = self.service_errors
        if rejected is not None and rejected.formset_prefix == self.prefix:
            message = rejected.error.detail
            raise forms.ValidationError(f"{rejected.label}: {message}" if rejected.label else message)


class ServiceInlineMixin:
    """InlineModelAdmin mixin for rows saved by services (see `ServiceFormAdminMixin.save_formset_with_services`).

    The service decides whether a row may be deleted. Django's own check of a
    row marked for deletion collects every protected object that refers to it
    (all the tickets of a ticket type) to list them; it is turned off.
    """

    formset = ServiceErrorsInlineFormSet

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = type(formset.form.__name__, (formset.form,), {"hand_clean_DELETE": _service_decides})
        return formset


def _service_decides(form) -> None:
    """The deletion is checked by the service when the formset is saved."""


class ServiceFormAdminMixin:
    """ModelAdmin mixin: a `ServiceRejected` from the save re-renders the form with its error.

    Subclasses implement `save_model_with_services` (a `DomainError` it raises is
    shown on the main form) and `save_formset_with_services` (which raises
    `reject(...)` for the row that failed). Their forms derive from
    `ServiceErrorsForm`, their inline formsets from `ServiceErrorsInlineFormSet`.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRejected as rejected:
            # The first pass's transaction is rolled back: validate the same POST
            # again, this time with the error, so the page shows it.
            request._service_rejected = rejected
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRejected as again:
            # Only if no form took the error: never save on the error pass.
            self.message_user(request, again.error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        # `delete_model` calls a service; its refusal (e.g. a booking made since
        # the confirmation page) rolls the deletion back and becomes a message.
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        rejected = getattr(request, "_service_rejected", None)
        if rejected is None:
            return form
        return type(form.__name__, (form,), {"service_errors": rejected})

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        rejected = getattr(request, "_service_rejected", None)
        if rejected is not None and issubclass(inline.formset, ServiceErrorsInlineFormSet):
            kwargs["service_errors"] = rejected
        return kwargs

    def save_model(self, request, obj, form, change):
        self._refuse_on_error_pass(request)
        try:
            self.save_model_with_services(request, obj, form, change)
        except DomainError as error:
            raise ServiceRejected(prefix=form.prefix, error=error) from error

    def save_formset(self, request, form, formset, change):
        self._refuse_on_error_pass(request)
        self.save_formset_with_services(request, form, formset, change)

    def save_model_with_services(self, request, obj, form, change) -> None:
        """Write `obj` through the services; a `DomainError` is shown on `form`."""
        raise NotImplementedError

    def save_formset_with_services(self, request, form, formset, change) -> None:
        """Write the formset's rows through the services; raise `ServiceRejected` (see `reject`)."""
        super().save_formset(request, form, formset, change)

    @staticmethod
    def _refuse_on_error_pass(request) -> None:
        # The error pass must never save, even if the error found no form to sit on.
        rejected = getattr(request, "_service_rejected", None)
        if rejected is not None:
            raise rejected

    @staticmethod
    def reject(error: DomainError, *, form=None, formset=None, label: str = "") -> ServiceRejected:
        """The `ServiceRejected` for an error raised while saving `form` (or a deletion in `formset`)."""
        if formset is not None:
            return ServiceRejected(formset_prefix=formset.prefix, error=error, label=label)
        return ServiceRejected(prefix=form.prefix if form is not None else None, error=error)


def run_for_each(model_admin, request, objects, service, *, done: str, log: str) -> int:
    """Call `service(obj)` for each object (an admin action); report the successes and each refusal.

    `done` is a message with `%(n)d`; `log` goes into each object's admin
    history. Each object runs in its own service transaction, so one refusal
    does not undo the others.
    """
    succeeded = 0
    for obj in objects:
        try:
            service(obj)
        except DomainError as error:
            model_admin.message_user(request, f"{obj}: {error.detail}", messages.ERROR)
        else:
            model_admin.log_change(request, obj, log)
            succeeded += 1
    if succeeded:
        model_admin.message_user(request, done % {"n": succeeded}, messages.SUCCESS)
    return succeeded


def adopt(instance, saved) -> None:
    """Make the admin's own (unsaved) instance the row a service just created."""
    for field in type(instance)._meta.concrete_fields:
        setattr(instance, field.attname, getattr(saved, field.attname))
    instance._state.adding = False
    instance._state.db = saved._state.db


def service_fields(form, allowed, *, changed_only: bool) -> dict:
    """What a service takes from a valid form: its fields in `allowed`, only the changed ones if asked."""
    names = form.changed_data if changed_only else form.cleaned_data
    return {name: form.cleaned_data[name] for name in names if name in allowed and name in form.cleaned_data}


# --- Times in an event's own zone ------------------------------------------------------------------


class LocalSplitDateTimeField(forms.SplitDateTimeField):
    """The admin's date + time inputs, read and shown in the zone `zone()` gives (not the site's UTC).

    `zone` is called when the value is shown or cleaned, so a zone chosen in the
    same form (a new event's) applies. Django's own checks of a time that does
    not exist or occurs twice in that zone (clock changes) apply as usual.
    """

    def __init__(self, *, zone, **kwargs):
        self.zone = zone
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, datetime) and timezone.is_aware(value):
            return timezone.make_naive(value, self.zone())
        return value

    def compress(self, data_list):
        with timezone.override(self.zone()):
            return super().compress(data_list)

    def has_changed(self, initial, data):
        return super().has_changed(self.prepare_value(initial), data)


class LocalTimesFormMixin:
    """A ModelForm whose datetime fields are entered and shown in an event's zone, labelled with it.

    Subclasses name the zone in `local_zone_name()`; it may read the submitted
    data (a new event's `timezone`), since it is asked while fields are cleaned.
    """

    class Media:
        css = {"all": ["css/local-times.css"]}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in list(self.fields.items()):
            if isinstance(field, forms.SplitDateTimeField) and not isinstance(field, LocalSplitDateTimeField):
                self.fields[name] = LocalSplitDateTimeField(
                    zone=self.local_zone, required=field.required, label=field.label, help_text=field.help_text,
                    widget=field.widget, initial=field.initial, disabled=field.disabled,
                )
        zone = self.local_zone_label()
        for field in self.fields.values():
            if isinstance(field, LocalSplitDateTimeField):
                field.label = label_with_zone(field.label, zone)

    def local_zone_name(self) -> str | None:
        raise NotImplementedError

    def local_zone(self) -> zoneinfo.ZoneInfo:
        return zone_or_none(self.local_zone_name()) or zoneinfo.ZoneInfo("UTC")

    def local_zone_label(self) -> str:
        """What the labels say the times are in: the zone's name, or the zone chosen in this form."""
        name = self.local_zone_name()
        return name if zone_or_none(name) is not None else str(_("the event's time zone"))


def label_with_zone(label, zone: str) -> str:
    """"Starts at (Europe/Oslo)"."""
    return f"{capfirst(label)} ({zone})" if label else f"({zone})"


class EventZoneAdminMixin:
    """ModelAdmin mixin: an existing row's change page is rendered in its event's zone.

    Read-only times (published, cancelled) and the date widgets' "Now" and
    "Today" shortcuts then follow the event's clock, like the form's fields.
    Subclasses name the zone in `event_zone_name(obj)`.
    """

    def event_zone_name(self, obj) -> str | None:
        raise NotImplementedError

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        zone = zone_or_none(self.event_zone_name(obj)) if obj is not None else None
        if zone is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(zone):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response
