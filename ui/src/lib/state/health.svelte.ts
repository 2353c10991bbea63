// "Is it reaching me?": the last probe of the public URL, the health report (per endpoint
// cadence and verdicts, systeme.io's webhooks, the rules) and the unread alerts, kept up
// to date by the live stream.

import type { Backend } from '../backend';
import type { Alert, AlertRule, HealthReport, NewAlertRule, ProbeView } from '../api';

export class Health {
  /** The last check of the public URL (null: no public URL, or not checked yet). */
  probe = $state<ProbeView | null>(null);
  report = $state<HealthReport | null>(null);
  /** Unread alerts, newest first. */
  alerts = $state<Alert[]>([]);
  /** Alerts raised while this window is open, not yet dismissed from the banner. */
  fresh = $state<Alert[]>([]);
  loading = $state(false);
  checking = $state(false);
  error = $state<string | null>(null);

  /** The probe is failing or an alert is unread: the header turns amber. */
  readonly troubled = $derived(this.probe?.reaches === false || this.alerts.length > 0);

  constructor(private readonly backend: Backend) {}

  /** Reads the whole report again (the dialog opened, a fix applied). */
  async load(): Promise<void> {
    this.loading = true;
    try {
      const report = await this.backend.health();
      this.report = report;
      this.alerts = report.alerts;
      this.probe = report.probe;
      this.error = null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    } finally {
      this.loading = false;
    }
  }

  /** The unread alerts alone (the window's start: the report is read when the view opens). */
  async loadAlerts(): Promise<void> {
    try {
      const unread = await this.backend.unreadAlerts();
      // Raised on the stream meanwhile: kept.
      const streamed = this.alerts.filter((a) => !unread.some((u) => u.id === a.id));
      this.alerts = [...streamed, ...unread];
    } catch {
      // A failed request is the connection's banner; the view says it when opened.
    }
  }

  /** Probes the public URL now. */
  async checkNow(): Promise<void> {
    this.checking = true;
    try {
      this.probe = await this.backend.probeNow();
      this.error = null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    } finally {
      this.checking = false;
    }
  }

  /** The stream said the public URL was checked. */
  probed(view: ProbeView | null): void {
    this.probe = view;
  }

  /** The stream said an alert was raised. */
  raised(alert: Alert): void {
    if (this.alerts.some((a) => a.id === alert.id)) return;
    this.alerts = [alert, ...this.alerts];
    this.fresh = [alert, ...this.fresh];
  }

  /** Marks alerts read (all unread ones without `ids`). */
  async acknowledge(ids = this.alerts.map((a) => a.id)): Promise<void> {
    if (ids.length === 0) return;
    await this.backend.acknowledgeAlerts(ids);
    this.alerts = this.alerts.filter((a) => !ids.includes(a.id));
    this.fresh = this.fresh.filter((a) => !ids.includes(a.id));
  }

  /** Takes alerts off the banner; they stay unread in the health view. */
  dismissFresh(): void {
    this.fresh = [];
  }

  async addRule(rule: NewAlertRule): Promise<AlertRule> {
    const added = await this.backend.addAlertRule(rule);
    if (this.report) this.report = { ...this.report, rules: [...this.report.rules, added] };
    return added;
  }

  async deleteRule(id: number): Promise<void> {
    const rules = await this.backend.deleteAlertRule(id);
    if (this.report) this.report = { ...this.report, rules };
  }
}
