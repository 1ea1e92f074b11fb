trigger SmsMessageSend on SMS_Message__c (after insert) {
    List<SMS_Message__c> requested = new List<SMS_Message__c>();
    for (SMS_Message__c m : Trigger.new) {
        if (m.Status__c == null || m.Status__c == 'Requested') {
            requested.add(m);
        }
    }
    SmsConnectSendSms.sendMessages(requested);
}
