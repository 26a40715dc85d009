from django.urls import path

from providers import views

urlpatterns = [
    path("models", views.ModelCatalogueView.as_view(), name="model-catalogue"),
]
