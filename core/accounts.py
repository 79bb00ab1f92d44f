"""Accounts: sign up on the site (log in, log out and password reset are Django's auth views), and the API token."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, resolve_url
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView
from drf_spectacular.utils import extend_schema
from rest_framework import parsers, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import JSONParser, LoginThrottle, ScopedThrottleMixin, StrictInput, validated
from core.api_schema import READ_ERRORS, token_response
from core.tokens import api_token_login


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        label=_("E-mail address"), max_length=254,
        help_text=_("For your tickets and to reset your password."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this e-mail address already exists; log in or "
                                          "reset your password."), code="duplicate_email")
        return email


class SignupView(FormView):
    """Create an account and log in; then back to where the buyer came from (`next`)."""

    form_class = SignupForm
    template_name = "registration/signup.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(self.next_url())
        return super().dispatch(request, *args, **kwargs)

    def next_url(self) -> str:
        target = self.request.POST.get("next") or self.request.GET.get("next") or ""
        if url_has_allowed_host_and_scheme(target, allowed_hosts={self.request.get_host()},
                                           require_https=self.request.is_secure()):
            return target
        return resolve_url(settings.LOGIN_REDIRECT_URL)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "next": self.next_url()}

    def form_valid(self, form):
        user = form.save()
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(self.next_url())


@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class TokenApi(ScopedThrottleMixin, APIView):
    """`{"username", "password"}` -> `{"token"}`: a new key for `Authorization: Token <key>`.

    Each call issues a new token. Logins are throttled per address (429 `throttled`), and
    repeated failures lock a username out for a while (429 `login_locked_out`), as on the
    site and the admin.
    """

    class AuthTokenSerializer(StrictInput):
        """The credentials of a user."""

        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False,
                                         style={"input_type": "password"})

    authentication_classes = ()
    permission_classes = (AllowAny,)
    parser_classes = (JSONParser, parsers.FormParser, parsers.MultiPartParser)
    extra_throttles = (LoginThrottle,)

    @extend_schema(request=AuthTokenSerializer, responses={200: token_response, **READ_ERRORS},
                   summary="Get your API token")
    def post(self, request, *args, **kwargs):
        data = validated(self.AuthTokenSerializer, request.data)
        return Response({"token": api_token_login(request=request, **data)})
